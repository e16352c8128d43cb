/** The sum of the samples of `name` in a /metrics text whose labels include `labels`, e.g. `operation="UploadPart"`. */
export function metricSum(text: string, name: string, labels: string): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}
