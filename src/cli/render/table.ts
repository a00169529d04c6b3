import Table from 'cli-table3'

/**
 * Renders rows as a cli-table3 box on a terminal, and as plain aligned columns otherwise, so
 * that pipes and scripts get text that `awk` and `cut` can read.
 */
export function renderTable(head: string[], rows: (string | number)[][], tty: boolean): string {
  if (tty) {
    const table = new Table({head, style: {head: ['cyan'], border: ['grey'], compact: true}})
    for (const row of rows) table.push(row.map(String))
    return table.toString()
  }
  const cells = [head, ...rows.map((row) => row.map(String))]
  const widths = head.map((_, col) => Math.max(...cells.map((row) => (row[col] ?? '').length)))
  return cells.map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n')
}

/** Renders label/value pairs as a two-column table (TTY) or `label: value` lines. */
export function renderProperties(pairs: [string, string | number][], tty: boolean): string {
  if (tty) {
    const table = new Table({style: {head: [], border: ['grey'], compact: true}})
    for (const [name, value] of pairs) table.push({[name]: String(value)})
    return table.toString()
  }
  const width = Math.max(...pairs.map(([name]) => name.length))
  return pairs.map(([name, value]) => `${(name + ':').padEnd(width + 1)} ${value}`).join('\n')
}
