package connectwise

// NextLink exposes nextLink to the fuzz test.
var NextLink = nextLink
