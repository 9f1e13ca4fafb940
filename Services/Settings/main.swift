// The Settings service arrives with its own issue.
