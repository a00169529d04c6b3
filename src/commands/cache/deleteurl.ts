import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {deleteCacheUrl, type CacheRecordView} from '../../lib/cache/cache-service.js'

export default class CacheDeleteUrl extends BaseCommand {
  static override summary = 'Delete every cache record of an origin URL'
  static override examples = ['<%= config.bin %> <%= command.id %> https://example.com/a.bin']
  static override args = {url: Args.string({description: 'Origin URL', required: true})}

  async run(): Promise<CacheRecordView[]> {
    const {args, flags} = await this.parse(CacheDeleteUrl)
    const records = await deleteCacheUrl(this.context(flags), args.url)
    if (!this.jsonEnabled()) this.log(`Deleted ${records.length} cache record(s) for ${args.url}.`)
    return records
  }
}
