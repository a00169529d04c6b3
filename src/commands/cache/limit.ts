import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {formatBytes} from '../../cli/render/job.js'
import {cacheLimit} from '../../lib/cache/cache-service.js'

export default class CacheLimit extends BaseCommand {
  static override summary = 'Show or set the maximum size of the peer cache'
  static override description = 'A percentage applies to the disk holding the state directory (default 1%). Lowering the limit evicts the least recently used records at once.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --set 5%', '<%= config.bin %> <%= command.id %> --set 2GiB']
  static override flags = {set: Flags.string({summary: 'New limit: a percentage of the disk or a size (KiB, MiB, GiB).'})}

  async run(): Promise<{maxSize: string; maxBytes: number}> {
    const {flags} = await this.parse(CacheLimit)
    const result = await cacheLimit(this.context(flags), flags.set)
    if (!this.jsonEnabled()) this.log(`Cache limit: ${result.maxSize} (${formatBytes(result.maxBytes)}).`)
    return result
  }
}
