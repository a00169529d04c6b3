// Generates man/bits.1 and one man/bits-<command>.1 per command from oclif.manifest.json, the
// command definitions as oclif itself reads them. Deterministic: no dates, only the package
// version, so a test can regenerate the pages and compare them with the checked-in ones.
// Usage: node scripts/generate-man.mjs [OUTPUT_DIR]   (default: man/)
import {mkdir, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const outDir = path.resolve(process.argv[2] ?? path.join(root, 'man'))
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'))
const manifest = JSON.parse(await readFile(path.join(root, 'oclif.manifest.json'), 'utf8'))
const bin = pkg.oclif.bin
const source = `openbits ${pkg.version}`

/** Escapes text for roff: backslashes, and a leading dot or quote that roff would read as a request. */
function esc(text) {
  return String(text)
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n')
}

function expand(text, id) {
  return String(text).replaceAll('<%= config.bin %>', bin).replaceAll('<%= command.id %>', id)
}

const pageName = (id) => `${bin}-${id.replaceAll(':', '-').replaceAll(' ', '-')}`

function commandPage(command) {
  const id = command.id.replaceAll(':', ' ')
  const name = pageName(command.id)
  const args = Object.values(command.args ?? {})
  const flags = Object.values(command.flags ?? {}).filter((flag) => !flag.hidden)
  const usage = [bin, id, ...args.map((arg) => (arg.required ? arg.name.toUpperCase() : `[${arg.name.toUpperCase()}]`)), flags.length > 0 ? '[FLAGS]' : ''].filter(Boolean).join(' ')
  const lines = [
    `.TH "${name.toUpperCase()}" "1" "" "${source}" "openbits manual"`,
    '.SH NAME',
    `${esc(name)} \\- ${esc(command.summary ?? '')}`,
    '.SH SYNOPSIS',
    `.B ${esc(usage)}`,
  ]
  if (command.description) lines.push('.SH DESCRIPTION', ...paragraphs(expand(command.description, id)))
  if (args.length > 0) {
    lines.push('.SH ARGUMENTS')
    for (const arg of args) lines.push('.TP', `.B ${esc(arg.name.toUpperCase())}`, esc(arg.description ?? ''))
  }
  if (flags.length > 0) {
    lines.push('.SH OPTIONS')
    const byGroup = [...flags].sort((a, b) => Number(a.helpGroup === 'GLOBAL') - Number(b.helpGroup === 'GLOBAL') || a.name.localeCompare(b.name))
    for (const flag of byGroup) {
      const names = [flag.char ? `\\-${flag.char}` : '', `\\-\\-${esc(flag.name)}${flag.type === 'option' ? ` ${esc(flag.options ? flag.options.join('|') : 'VALUE')}` : ''}`].filter(Boolean).join(', ')
      const extra = []
      if (flag.multiple) extra.push('May be repeated.')
      if (flag.default !== undefined && flag.default !== false) extra.push(`Default: ${flag.default}.`)
      if (flag.env) extra.push(`Environment: ${flag.env}.`)
      if (flag.allowNo) extra.push(`Negate with \\-\\-no\\-${esc(flag.name)}.`)
      lines.push('.TP', `.B ${names}`, esc([flag.summary ?? flag.description ?? '', ...extra].join(' ')))
    }
  }
  if (command.examples?.length) {
    lines.push('.SH EXAMPLES')
    for (const example of command.examples) {
      const text = typeof example === 'string' ? example : example.command
      lines.push('.PP', '.nf', `.RS 4`, esc(expand(text, id)), '.RE', '.fi')
    }
  }
  lines.push('.SH SEE ALSO', `.BR ${bin} (1)`)
  return lines.join('\n') + '\n'
}

function paragraphs(text) {
  return text.split(/\n\s*\n/).flatMap((block) => {
    const isList = block.split('\n').some((line) => /^\s{2,}\S/.test(line))
    return isList ? ['.PP', '.nf', esc(block), '.fi'] : ['.PP', esc(block.replace(/\n/g, ' '))]
  })
}

function overviewPage(commands) {
  const lines = [
    `.TH "${bin.toUpperCase()}" "1" "" "${source}" "openbits manual"`,
    '.SH NAME',
    `${bin} \\- ${esc(pkg.description)}`,
    '.SH SYNOPSIS',
    `.B ${bin} COMMAND [ARGS] [FLAGS]`,
    '.SH DESCRIPTION',
    '.PP',
    esc('openbits re-implements Windows BITS: transfer jobs that start SUSPENDED, move through QUEUED, CONNECTING, TRANSFERRING to TRANSFERRED, retry after transient errors, and make their files appear only on complete. Jobs live as files in a state directory; "bits serve" moves them forward.'),
    '.PP',
    esc('Every command takes --json (exactly one JSON document on stdout: {"status":0,"result":...,"warnings":[]}, or {"status":N,"error":{...}} on failure), --state-dir and --help.'),
    '.SH COMMANDS',
  ]
  for (const command of commands) lines.push('.TP', `.BR ${esc(pageName(command.id))} (1)`, esc(command.summary ?? ''))
  lines.push(
    '.SH EXIT STATUS',
    '.TP', '.B 0', 'Success.',
    '.TP', '.B 2', 'Usage error: bad arguments or flags.',
    '.TP', '.B 3', 'Not found: job, file, cache record.',
    '.TP', '.B 4', 'Invalid state for the action (BG_E_INVALID_STATE, BG_E_EMPTY).',
    '.TP', '.B 5', 'Transient network error: worth retrying later.',
    '.TP', '.B 6', 'Permanent remote error, or a job that ended in ERROR.',
    '.TP', '.B 7', 'Local I/O error.',
    '.TP', '.B 8', 'State directory error: locked, corrupt, unreadable.',
    '.TP', '.B 9', 'Peer or server error (e.g. a daemon already runs).',
    '.TP', '.B 10', 'A wait ended with the job still active.',
    '.TP', '.B 70', 'Internal error.',
    '.TP', '.B 130', 'Interrupted.',
    '.SH ENVIRONMENT',
    '.TP', '.B BITS_STATE_DIR', esc('State directory, when --state-dir is not given. Default: the per-user data directory ($XDG_DATA_HOME/openbits, ~/Library/Application Support/openbits, %LOCALAPPDATA%\\openbits\\Data).'),
    '.TP', '.B BITS_LOG_LEVEL', esc('error, warn, info or debug.'),
    '.TP', '.B BITS_PASSWORD', esc('Password for "bits set --credentials"; never taken from the command line.'),
    '.TP', '.B BITS_NO_DAEMON', esc('1: do not start "bits serve" in the background.'),
    '.SH FILES',
    '.TP', '.I STATE_DIR/jobs/GUID.json', esc('One file per job (mode 0600).'),
    '.TP', '.I STATE_DIR/daemon.pid', esc('Lock of the running "bits serve".'),
    '.TP', '.I STATE_DIR/settings.json', esc('Settings ("bits settings").'),
    '.SH SEE ALSO',
    esc('The docs/ folder of openbits: state-dir.md, json-output.md, exit-codes.md, daemon.md.'),
  )
  return lines.join('\n') + '\n'
}

const commands = Object.values(manifest.commands)
  .filter((command) => !command.hidden)
  .sort((a, b) => a.id.localeCompare(b.id))
await mkdir(outDir, {recursive: true})
for (const stale of (await readdir(outDir)).filter((name) => name.endsWith('.1'))) await rm(path.join(outDir, stale))
await writeFile(path.join(outDir, `${bin}.1`), overviewPage(commands))
for (const command of commands) await writeFile(path.join(outDir, `${pageName(command.id)}.1`), commandPage(command))
