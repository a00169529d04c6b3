import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {renderCacheRecord} from '../../cli/render/cache.js'
import {cacheRecordInfo, type CacheRecordView} from '../../lib/cache/cache-service.js'

export default class CacheInfo extends BaseCommand {
  static override summary = 'Show one cache record'
  static override examples = ['<%= config.bin %> <%= command.id %> {5D3A8E2C-1111-4A4A-8B8B-000000000001}']
  static override args = {id: Args.string({description: 'Record GUID (braces optional)', required: true})}

  async run(): Promise<CacheRecordView> {
    const {args, flags} = await this.parse(CacheInfo)
    const record = await cacheRecordInfo(this.context(flags), args.id)
    if (!this.jsonEnabled()) this.log(renderCacheRecord(record, this.isTty))
    return record
  }
}
