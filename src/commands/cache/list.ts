import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderCacheList} from '../../cli/render/cache.js'
import {listCache, type CacheListing} from '../../lib/cache/cache-service.js'

export default class CacheList extends BaseCommand {
  static override summary = 'List the records of the peer cache'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --verbose --json']
  static override flags = {verbose: Flags.boolean({char: 'v', summary: 'Include the SHA-256 of every block.'})}

  async run(): Promise<CacheListing> {
    const {flags} = await this.parse(CacheList)
    const listing = await listCache(this.context(flags), flags.verbose)
    if (!this.jsonEnabled()) this.log(renderCacheList(listing, this.isTty))
    return listing
  }
}
