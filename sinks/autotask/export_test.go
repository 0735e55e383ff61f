package autotask

// NormaliseZone exposes normaliseZone to the fuzz test.
var NormaliseZone = normaliseZone
