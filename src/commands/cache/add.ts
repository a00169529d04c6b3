import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderCacheRecord} from '../../cli/render/cache.js'
import {addUrlToCache, type CacheRecordView} from '../../lib/cache/cache-service.js'

export default class CacheAdd extends BaseCommand {
  static override summary = 'Download a URL into the peer cache (preheat it for peers)'
  static override examples = ['<%= config.bin %> <%= command.id %> https://example.com/image.iso']
  static override args = {url: Args.string({description: 'Origin URL (http or https)', required: true})}

  async run(): Promise<CacheRecordView> {
    const {args, flags} = await this.parse(CacheAdd)
    const record = await addUrlToCache(this.context(flags), args.url)
    if (!this.jsonEnabled()) this.log(renderCacheRecord(record, this.isTty))
    return record
  }
}
