// Mocha's spec reporter, plus one line of counts appended to $TEST_COUNTS_FILE so that
// scripts/test.sh can print a single "N passed, N failed" summary across all test stages.
'use strict';
const fs = require('node:fs');
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const file = process.env.TEST_COUNTS_FILE;
      if (!file) return;
      const { passes, failures, pending } = this.stats;
      fs.appendFileSync(file, `${passes} ${failures} ${pending}\n`);
    });
  }
}

module.exports = SummaryReporter;
