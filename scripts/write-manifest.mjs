// Writes oclif.manifest.json so that `bits` loads only the command it runs at start-up, instead
// of importing every command file. Does what `oclif manifest` does, without the oclif dev CLI.
import {Plugin} from '@oclif/core'
import {rm, writeFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'
import path from 'node:path'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const file = path.join(root, 'oclif.manifest.json')
await rm(file, {force: true})
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true})
await plugin.load()
await writeFile(file, JSON.stringify(plugin.manifest, null, 2) + '\n')
