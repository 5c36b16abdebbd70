package dynamodb

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The fence of a deleted stream (item layout 2).
//
// A single-event append at Exact(n) written as one PutItem (see
// unplaced.go) reads version n first and then puts n+1 on condition that
// it does not exist. A DeleteStream that commits between the two would
// leave the put free to recreate the stream the append expected at n. So in
// a table of item layout 2 the delete's transaction also puts a fence at
// version V+1 after the deleted version V (where it used to check that V+1
// does not exist): a stub marked fc, deleted, with V's position. A stale
// put of V+1 meets it and fails as a version conflict; the append then
// reads the stream (version 0) and fails with the expected version as on
// every other path.
//
// Everything that reads the last item of a stream (top) reads a fence as
// the deleted stream's stub at V. An append that saw the stream deleted and
// recreates it writes its first event at V+1 in place of the fence
// (condFreeOrFence); so do imports and multi-stream appends that write a
// stream they read as deleted, and the check that a stream a multi-stream
// append only checks is still at its version. Every other write of an
// event needs the version free, as before.
const attrFence = "fc"

// The put conditions of an event item.
const (
	condFree        = "attribute_not_exists(pk)"
	condFreeOrFence = "attribute_not_exists(pk) OR attribute_exists(" + attrFence + ")"
)

// fenceItem returns the fence at version v of a stream deleted at v-1,
// whose stub has position p.
func fenceItem(stream string, v, p uint64) map[string]types.AttributeValue {
	item := stubItem(stream, v, p, true)
	item[attrFence] = boolAttr(true)
	return item
}

// isFence reports whether an item of a stream's partition is a fence.
func isFence(item map[string]types.AttributeValue) bool {
	_, ok := item[attrFence]
	return ok
}

// putCond returns the condition of the put of the run's j-th event: its
// version free, or for the first event of a run that recreates a deleted
// stream, free or its fence.
func (r run) putCond(j int) *string {
	if j == 0 && r.overFence {
		return aws.String(condFreeOrFence)
	}
	return aws.String(condFree)
}
