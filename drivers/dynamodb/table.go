package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
)

var tableNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

// ValidateTableName reports whether name is a DynamoDB table name: 3–255
// characters of a–z, A–Z, 0–9, '_', '-' and '.'. The error matches
// [eventstore.ErrInvalidArgument].
func ValidateTableName(name string) error {
	if !tableNameRE.MatchString(name) {
		return fmt.Errorf("%w: table name %q: want 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'", eventstore.ErrInvalidArgument, name)
	}
	return nil
}

// CreateTableInput returns the request that creates a table for the driver:
// on-demand capacity, a string partition key "pk", a number sort key "sk",
// and a local secondary index "by_id" on the binary attribute "id" projecting
// only keys. Applications that create their tables with infrastructure tools
// declare the same schema (billing mode and tags are theirs to choose); for
// a table of the [LogIndexed] layout, that of [CreateIndexedTableInput].
func CreateTableInput(table string) *awsdynamodb.CreateTableInput {
	return &awsdynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String(attrID), AttributeType: types.ScalarAttributeTypeB},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		LocalSecondaryIndexes: []types.LocalSecondaryIndex{{
			IndexName: aws.String(indexByID),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrID), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	}
}

// CreateIndexedTableInput returns the request that creates a table for a
// store of the [LogIndexed] layout (what [Options.CreateTable] creates
// with it): [CreateTableInput]'s, and a sparse global secondary index
// "unplaced" on the number attributes "ub" (HASH) and "ua" (RANGE)
// projecting "t", "tg", "b", "s", "v", "n", "ty", "tt", "rs", "rv" and
// "rn", which only the inbox items and the events not placed in the log
// yet carry. An indexed table set up with the index writes each
// single-event append as one PutItem (item layout 2); one set up without
// it writes every append with an inbox item (item layout 1).
func CreateIndexedTableInput(table string) *awsdynamodb.CreateTableInput {
	in := CreateTableInput(table)
	in.AttributeDefinitions = append(in.AttributeDefinitions,
		types.AttributeDefinition{AttributeName: aws.String(attrUnplacedShard), AttributeType: types.ScalarAttributeTypeN},
		types.AttributeDefinition{AttributeName: aws.String(attrUnplacedArrival), AttributeType: types.ScalarAttributeTypeN},
	)
	in.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{{
		IndexName: aws.String(indexUnplaced),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrUnplacedShard), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrUnplacedArrival), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{
			ProjectionType: types.ProjectionTypeInclude,
			NonKeyAttributes: []string{
				attrType, attrTags, attrBytes, // events
				attrStream, attrVersion, attrCount, attrTypes, attrEntryTags, attrRunStreams, attrRunVersions, attrRunCounts, // inbox items
			},
		},
	}}
	return in
}

// ensureTable checks the table exists with the driver's schema, creating it
// first with opts.CreateTable (unless opts.MustExist), and waits until it
// is ACTIVE. A missing table is an error matching
// eventstore.ErrStoreNotFound.
func (d *Driver) ensureTable(ctx context.Context, opts Options) error {
	create := opts.CreateTable && !opts.MustExist
	desc, err := d.probe(ctx, opts.ConnectTimeout)
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) && create {
		err = d.call(ctx, "CreateTable", func(ctx context.Context) error {
			in := CreateTableInput(d.table)
			if opts.Log == LogIndexed {
				in = CreateIndexedTableInput(d.table)
			}
			_, err := d.client.CreateTable(ctx, in, noRetry)
			return err
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: another process created it first
			return wrapNative(err)
		}
		desc, err = d.describeTable(ctx)
	}
	if errors.As(err, &notFound) {
		if opts.MustExist {
			return fmt.Errorf("dynamodb: %w: the table does not exist (must_exist: nothing was created): %w",
				eventstore.ErrStoreNotFound, err)
		}
		return fmt.Errorf("dynamodb: %w: the table does not exist: create it with Options.CreateTable "+
			"(URL parameter create_table=true) or with the schema of CreateTableInput: %w", eventstore.ErrStoreNotFound, err)
	}
	if err != nil {
		return wrapNative(err)
	}
	for wait := 1; desc.TableStatus != types.TableStatusActive; wait++ {
		if desc.TableStatus != types.TableStatusCreating && desc.TableStatus != types.TableStatusUpdating {
			return fmt.Errorf("dynamodb: the table is %s", desc.TableStatus)
		}
		if err := backoff.Wait(ctx, wait); err != nil {
			return err
		}
		if desc, err = d.describeTable(ctx); err != nil {
			return wrapNative(err)
		}
	}
	d.hasUnplaced, err = checkSchema(desc)
	return err
}

// probe is the driver's first request: DescribeTable, with its retries
// bounded by timeout, so that an endpoint that accepts connections and
// never answers fails after timeout rather than after MaxAttempts response
// timeouts (or never, with a client without them). The error then matches
// context.DeadlineExceeded, as the HTTP client's own timeouts do (they may
// come first).
func (d *Driver) probe(ctx context.Context, timeout time.Duration) (*types.TableDescription, error) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	desc, err := d.describeTable(pctx)
	if err != nil && ctx.Err() == nil && (pctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
		if !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return nil, fmt.Errorf("dynamodb: no answer from DynamoDB within %s (connect_timeout): %w", timeout, err)
	}
	return desc, err
}

func (d *Driver) describeTable(ctx context.Context) (*types.TableDescription, error) {
	var out *awsdynamodb.DescribeTableOutput
	err := d.call(ctx, "DescribeTable", func(ctx context.Context) error {
		var err error
		out, err = d.client.DescribeTable(ctx, &awsdynamodb.DescribeTableInput{TableName: aws.String(d.table)}, noRetry)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Table, nil
}

// checkSchema reports whether a table has the keys and index the driver
// needs, and whether it has the global index of unplaced events (optional;
// when present it must have the driver's keys).
func checkSchema(t *types.TableDescription) (hasUnplaced bool, err error) {
	want := CreateIndexedTableInput("")
	attrType := map[string]types.ScalarAttributeType{}
	for _, a := range t.AttributeDefinitions {
		attrType[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	for _, a := range want.AttributeDefinitions {
		name := aws.ToString(a.AttributeName)
		if got, ok := attrType[name]; !ok && (name == attrUnplacedShard || name == attrUnplacedArrival) {
			continue // only the optional global index declares them
		} else if got != a.AttributeType {
			return false, schemaErr("attribute %q has type %q, want %q", name, got, a.AttributeType)
		}
	}
	if !sameKeys(t.KeySchema, want.KeySchema) {
		return false, schemaErr("the key schema is not pk (HASH), sk (RANGE)")
	}
	for _, gsi := range t.GlobalSecondaryIndexes {
		if aws.ToString(gsi.IndexName) == indexUnplaced {
			if !sameKeys(gsi.KeySchema, want.GlobalSecondaryIndexes[0].KeySchema) {
				return false, schemaErr("index %q is not on ub (HASH), ua (RANGE)", indexUnplaced)
			}
			hasUnplaced = true
		}
	}
	for _, lsi := range t.LocalSecondaryIndexes {
		if aws.ToString(lsi.IndexName) == indexByID {
			if !sameKeys(lsi.KeySchema, want.LocalSecondaryIndexes[0].KeySchema) {
				return false, schemaErr("index %q is not on pk (HASH), id (RANGE)", indexByID)
			}
			return hasUnplaced, nil
		}
	}
	return false, schemaErr("the local secondary index %q is missing", indexByID)
}

func sameKeys(got, want []types.KeySchemaElement) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if aws.ToString(got[i].AttributeName) != aws.ToString(want[i].AttributeName) || got[i].KeyType != want[i].KeyType {
			return false
		}
	}
	return true
}

func schemaErr(format string, args ...any) error {
	return fmt.Errorf("%w: the table was not created for this driver: %s (see CreateTableInput)", eventstore.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// LogLayout is the layout of a table's global log: a property of the table,
// chosen when the table is set up and recorded in its layout item.
type LogLayout string

const (
	// LogHead is the layout of tables from before LogIndexed, and the
	// default: every append writes the next entry of one dense log in its
	// own transaction, so the appends of a table share one partition key
	// and one transaction at a time (see "Throughput" in
	// docs/dynamodb.md).
	LogHead LogLayout = "head"
	// LogIndexed makes appends write only their own items and an inbox
	// item in one of several partitions, no item that every append writes;
	// an orderer, run by one of the drivers on the table at a time under a
	// lease, gives the appended events their positions and writes the log
	// entries. An append waits for its position up to
	// [Options.OrderTimeout].
	LogIndexed LogLayout = "indexed"
)

// layout is what a table's layout item records.
type layout struct {
	bucketSize        uint64 // positions per log partition
	checkpointsCopied bool   // the current checkpoint layout (see copyEarlierCheckpoints)
	log               LogLayout
	tagIndex          bool // every log entry has its tag items (see tagindex.go)
	// unplaced is set in an indexed table of item layout 2: single-event
	// appends are marked in the global index of unplaced events.
	unplaced bool
}

// ensureLayout reads the table's layout item, writing it first in a new
// table (with opts.logBucketSize positions per log partition, the current
// checkpoint layout: a new table holds no checkpoint of the earlier one, and
// the log layout opts.Log), and returns what it records. An opts.Log other
// than the table's is an error matching eventstore.ErrInvalidArgument.
// With opts.MustExist it writes nothing: a table without the item holds no
// store yet, an error matching eventstore.ErrStoreNotFound.
func (d *Driver) ensureLayout(ctx context.Context, opts Options) (layout, error) {
	for range 2 {
		var out *awsdynamodb.GetItemOutput
		err := d.call(ctx, "GetItem", func(ctx context.Context) error {
			var err error
			out, err = d.client.GetItem(ctx, &awsdynamodb.GetItemInput{
				TableName: aws.String(d.table), Key: key(layoutPK, 0), ConsistentRead: aws.Bool(true),
			}, noRetry)
			return err
		})
		if err != nil {
			return layout{}, wrapNative(err)
		}
		if out.Item != nil {
			l, err := decodeLayout(out.Item, opts.Log)
			if err == nil && l.unplaced && !d.hasUnplaced {
				return layout{}, fmt.Errorf("dynamodb: %w: the table has item layout %d, but not its global secondary index %q (see CreateTableInput)",
					eventstore.ErrInvalidArgument, layoutUnplaced, indexUnplaced)
			}
			return l, err
		}
		if opts.MustExist {
			return layout{}, fmt.Errorf("dynamodb: %w: the table holds no event store yet (no layout item; must_exist: "+
				"nothing was written): open it once without must_exist to set it up", eventstore.ErrStoreNotFound)
		}
		item := key(layoutPK, 0)
		item[attrLayout] = num(layoutVersion)
		if opts.Log == LogIndexed && d.hasUnplaced {
			item[attrLayout] = num(layoutUnplaced)
		}
		item[attrBucket] = num(opts.logBucketSize)
		item[attrCheckpoints] = num(checkpointLayout)
		if opts.Log == LogIndexed {
			item[attrLogLayout] = str(string(LogIndexed))
		}
		if !opts.noTagIndex {
			item[attrTagIndex] = num(1)
		}
		err = d.call(ctx, "PutItem", func(ctx context.Context) error {
			_, err := d.client.PutItem(ctx, &awsdynamodb.PutItemInput{
				TableName: aws.String(d.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}, noRetry)
			return err
		})
		if err != nil && classify(err) != classConflict { // conflict: another driver wrote it first
			return layout{}, wrapNative(err)
		}
	}
	return layout{}, fmt.Errorf("dynamodb: layout item vanished")
}

// decodeLayout decodes the layout item, checking it against the log layout
// the driver was asked for (empty: any).
func decodeLayout(item map[string]types.AttributeValue, want LogLayout) (layout, error) {
	v, err := getNum(item, attrLayout)
	if err != nil {
		return layout{}, fmt.Errorf("dynamodb: layout item: %w", err)
	}
	if v != layoutVersion && v != layoutUnplaced {
		return layout{}, fmt.Errorf("dynamodb: the table has item layout %d; this driver reads layouts %d and %d", v, layoutVersion, layoutUnplaced)
	}
	l := layout{log: LogHead, checkpointsCopied: hasCheckpointLayout(item), unplaced: v == layoutUnplaced}
	if v, err := getNum(item, attrTagIndex); err == nil && v == 1 {
		l.tagIndex = true
	}
	l.bucketSize, err = getNum(item, attrBucket)
	if err != nil || l.bucketSize < maxTxnItems {
		return layout{}, fmt.Errorf("dynamodb: layout item: bad log partition size %d: %v", l.bucketSize, err)
	}
	if _, ok := item[attrLogLayout]; ok {
		s, err := getStr(item, attrLogLayout)
		if err != nil {
			return layout{}, fmt.Errorf("dynamodb: layout item: %w", err)
		}
		l.log = LogLayout(s)
		if l.log != LogHead && l.log != LogIndexed {
			return layout{}, fmt.Errorf("dynamodb: the table has log layout %q; this driver reads %q and %q", s, LogHead, LogIndexed)
		}
	}
	if l.unplaced && l.log != LogIndexed {
		return layout{}, fmt.Errorf("dynamodb: layout item: item layout %d in a table of the %q log layout", v, l.log)
	}
	if want != "" && want != l.log {
		return layout{}, fmt.Errorf("dynamodb: %w: the table has the %q log layout, not %q (the layout is the table's, chosen when it was set up)",
			eventstore.ErrInvalidArgument, l.log, want)
	}
	return l, nil
}

// hasCheckpointLayout reports whether the layout item records the current
// checkpoint layout: every checkpoint of the earlier one has been copied.
func hasCheckpointLayout(layout map[string]types.AttributeValue) bool {
	v, err := getNum(layout, attrCheckpoints)
	return err == nil && v >= checkpointLayout
}
