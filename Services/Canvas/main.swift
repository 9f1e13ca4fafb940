// The Canvas service arrives with its own issue.
