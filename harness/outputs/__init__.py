"""What a person or a CI reads of a run besides the report: the terminal's lines (`terminal`),
JUnit (`junit`), the GitHub step summary and annotations (`ci`), flake rates over repeats
(`flake`). Each is a pure function of results; every foreign text goes through
`harness.foreign.safe` for its sink."""
