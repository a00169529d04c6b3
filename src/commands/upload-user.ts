import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {readSecret} from '../cli/prompt.js'
import {setUploadUser} from '../lib/upload/upload-users.js'

export default class UploadUser extends BaseCommand {
  static override summary = 'Add or replace an uploader in a users file for bits serve --upload-users'
  static override description = 'Stores a salted scrypt hash of the password, never the password. The password comes from BITS_PASSWORD or a prompt.'
  static override examples = ['BITS_PASSWORD=s3cret <%= config.bin %> <%= command.id %> alice --users-file ./uploaders', '<%= config.bin %> serve --upload ./inbox=/uploads --upload-users ./uploaders']
  static override args = {name: Args.string({description: 'User name', required: true})}
  static override flags = {'users-file': Flags.string({summary: 'The users file to change (created 0600).', required: true})}

  async run(): Promise<{file: string; user: string; replaced: boolean}> {
    const {args, flags} = await this.parse(UploadUser)
    const result = await setUploadUser(flags['users-file'], args.name, await readSecret(`Password for ${args.name}: `, 'BITS_PASSWORD'))
    if (!this.jsonEnabled()) this.log(`${result.replaced ? 'Replaced' : 'Added'} ${result.user} in ${result.file}.`)
    return result
  }
}
