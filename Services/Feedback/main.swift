// The Feedback service arrives with its own issue.
