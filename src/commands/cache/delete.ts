import {Args} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {deleteCacheRecord, type CacheRecordView} from '../../lib/cache/cache-service.js'

export default class CacheDelete extends BaseCommand {
  static override summary = 'Delete one cache record and its data'
  static override examples = ['<%= config.bin %> <%= command.id %> {5D3A8E2C-1111-4A4A-8B8B-000000000001}']
  static override args = {id: Args.string({description: 'Record GUID (braces optional)', required: true})}

  async run(): Promise<CacheRecordView> {
    const {args, flags} = await this.parse(CacheDelete)
    const record = await deleteCacheRecord(this.context(flags), args.id)
    if (!this.jsonEnabled()) this.log(`Deleted cache record for ${record.url}.`)
    return record
  }
}
