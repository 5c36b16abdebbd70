package kurrentdb

// RetryWindow is retryWindow, for the external tests.
const RetryWindow = retryWindow
