// CI reads the last line: 'N passed, N failed' (skipped and todo tests count as neither).
// It is written at process exit so that it comes after Jest's own summary.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites
    process.once('exit', () => process.stdout.write(`\n${results.numPassedTests} passed, ${failed} failed\n`))
  }
}
module.exports = SummaryReporter
