package postgres

// Classify is the dialect's classification, for the black-box tests.
var Classify = dialect{}.Classify
