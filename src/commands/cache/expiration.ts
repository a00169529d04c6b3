import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {cacheExpiration} from '../../lib/cache/cache-service.js'

export default class CacheExpiration extends BaseCommand {
  static override summary = 'Show or set how long an unused cache record is kept'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --set 604800']
  static override flags = {set: Flags.integer({summary: 'Seconds since the last access (default 7776000, 90 days).', min: 1})}

  async run(): Promise<{maxAgeSeconds: number}> {
    const {flags} = await this.parse(CacheExpiration)
    const result = await cacheExpiration(this.context(flags), flags.set)
    if (!this.jsonEnabled()) this.log(`Cache records expire ${result.maxAgeSeconds} s after their last access.`)
    return result
  }
}
