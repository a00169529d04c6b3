import {BaseCommand} from '../../cli/base-command.js'
import {clearCache} from '../../lib/cache/cache-service.js'

export default class CacheClear extends BaseCommand {
  static override summary = 'Delete every cache record'
  static override examples = ['<%= config.bin %> <%= command.id %>']

  async run(): Promise<{deleted: number}> {
    const {flags} = await this.parse(CacheClear)
    const result = await clearCache(this.context(flags))
    if (!this.jsonEnabled()) this.log(`Deleted ${result.deleted} cache record(s).`)
    return result
  }
}
