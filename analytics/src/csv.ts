/** One RFC 4180 line; cells that could start a spreadsheet formula are prefixed with '. */
export function csvLine(cells: readonly unknown[]): string {
  return `${cells
    .map((c) => {
      let s = c === null || c === undefined ? '' : typeof c === 'object' ? JSON.stringify(c) : String(c);
      if (/^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s)) s = `'${s}`;
      return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    })
    .join(',')}\r\n`;
}
