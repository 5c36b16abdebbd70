package sqlite

// The driver's own SQL, for the …/raw twins of bench_test.go.
const (
	QueryHead           = queryHead
	QueryInsertAppend   = queryInsertAppend
	QueryStreamForwards = queryStreamForwards
	QueryAllForwards    = queryAllForwards
)

// InsertRows are the row counts of the driver's multi-row INSERTs.
var InsertRows = insertRows

// InsertQuery returns the driver's INSERT of rows events.
func InsertQuery(rows int) string { return insertQuery(rows) }
