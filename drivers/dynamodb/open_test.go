package dynamodb_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// useTestCredentials points the default AWS chain at dummy credentials (the
// URL never carries any). Not parallel: it sets the environment.
func useTestCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret-never-shown")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestOpenURL(t *testing.T) {
	endpoint := testenv.MustHaveDynamoDB(t)
	useTestCredentials(t)
	ctx := t.Context()
	table := randomTable()
	deleteTableAtCleanup(t, newClient(t, nil), table)
	u := "dynamodb://" + table + "?region=us-east-1&create_table=true&max_attempts=3&endpoint=" + url.QueryEscape(endpoint)

	store, err := eventstore.Open(ctx, u)
	require.NoError(t, err)
	res, err := store.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{"a":1}`)))
	require.NoError(t, err)
	assert.Equal(t, eventstore.Position{Commit: 1}, res.Position)
	var client *awsdynamodb.Client
	require.True(t, store.As(&client), "As(**dynamodb.Client)")
	require.NotNil(t, client)
	require.NoError(t, store.Close())

	// Open again without create_table: the table exists now, with its events.
	d, err := dynamodb.Open(ctx, "dynamodb://"+table+"?region=us-east-1&endpoint="+url.QueryEscape(endpoint), dynamodb.Options{})
	require.NoError(t, err)
	s2 := eventstore.New(d, eventstore.Options{})
	defer s2.Close()
	v, err := s2.StreamVersion(ctx, "Order-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v)
}

func TestOpenURLErrors(t *testing.T) {
	endpoint := testenv.MustHaveDynamoDB(t)
	useTestCredentials(t)
	ep := url.QueryEscape(endpoint)
	cases := []struct {
		name, url string
		want      error  // the error must match it
		says      string // and mention this
	}{
		{"UnknownParameter", "dynamodb://events?region=us-east-1&consistent=false", eventstore.ErrInvalidArgument, `unknown parameter "consistent"`},
		{"SecretParameter", "dynamodb://events?region=us-east-1&aws_secret_access_key=hunter2", eventstore.ErrInvalidArgument, "unknown parameter"},
		{"Repeated", "dynamodb://events?region=us-east-1&region=eu-west-1", eventstore.ErrInvalidArgument, "given 2 times"},
		{"CredentialsInURL", "dynamodb://AKIAEXAMPLE:hunter2@events?region=us-east-1", eventstore.ErrInvalidArgument, "credentials do not belong in the URL"},
		{"BadTableName", "dynamodb://ab?region=us-east-1", eventstore.ErrInvalidArgument, "table name"},
		{"Path", "dynamodb://events/more?region=us-east-1", eventstore.ErrInvalidArgument, "TABLE"},
		{"BadEndpoint", "dynamodb://events?region=us-east-1&endpoint=ftp://x", eventstore.ErrInvalidArgument, "endpoint"},
		{"EndpointWithCredentials", "dynamodb://events?region=us-east-1&endpoint=" + url.QueryEscape("http://u:hunter2@127.0.0.1:1"), eventstore.ErrInvalidArgument, "without credentials"},
		{"BadCreateTable", "dynamodb://events?region=us-east-1&create_table=yes-please", eventstore.ErrInvalidArgument, "create_table"},
		{"BadMaxAttempts", "dynamodb://events?region=us-east-1&max_attempts=0", eventstore.ErrInvalidArgument, "max_attempts"},
		{"NoRegion", "dynamodb://events?endpoint=" + ep, eventstore.ErrInvalidArgument, "no region"},
		{"MissingTable", "dynamodb://" + randomTable() + "?region=us-east-1&endpoint=" + ep, eventstore.ErrStoreNotFound, "create_table=true"},
		{"Semicolon", "dynamodb://events?region=us-east-1;create_table=true&endpoint=" + ep, eventstore.ErrInvalidArgument, "malformed query"},
		{"BadEscape", "dynamodb://events?region=us-east-1&endpoint=" + ep + "&create_table=%zz", eventstore.ErrInvalidArgument, "malformed query"},
		{"BadMustExist", "dynamodb://events?region=us-east-1&must_exist=yes&endpoint=" + ep, eventstore.ErrInvalidArgument, "must_exist"},
		{"RepeatedMustExist", "dynamodb://events?region=us-east-1&must_exist=true&must_exist=true&endpoint=" + ep, eventstore.ErrInvalidArgument, "given 2 times"},
		{"BadConnectTimeout", "dynamodb://events?region=us-east-1&connect_timeout=0&endpoint=" + ep, eventstore.ErrInvalidArgument, "connect_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eventstore.Open(t.Context(), tc.url)
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
			assert.Contains(t, err.Error(), tc.says)
			assert.NotContains(t, err.Error(), "hunter2", "a secret reached the error")
			assert.NotContains(t, err.Error(), "test-secret-never-shown", "a secret reached the error")
		})
	}
	t.Run("MissingTableIsNotFound", func(t *testing.T) {
		_, err := dynamodb.New(t.Context(), newClient(t, nil), randomTable(), dynamodb.Options{})
		assert.ErrorIs(t, err, eventstore.ErrStoreNotFound)
		var notFound *types.ResourceNotFoundException
		assert.ErrorAs(t, err, &notFound)
	})
	t.Run("NegativeConnectTimeout", func(t *testing.T) {
		_, err := dynamodb.New(t.Context(), newClient(t, nil), "events", dynamodb.Options{ConnectTimeout: -time.Second})
		assert.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	})
}

// TestNewRefusesOtherSchemas opens tables that were not made for the driver.
func TestNewRefusesOtherSchemas(t *testing.T) {
	client := newClient(t, nil)
	withoutIndex := dynamodb.CreateTableInput(randomTable())
	withoutIndex.LocalSecondaryIndexes = nil
	withoutIndex.AttributeDefinitions = withoutIndex.AttributeDefinitions[:2]
	stringSortKey := dynamodb.CreateTableInput(randomTable())
	stringSortKey.AttributeDefinitions[1].AttributeType = types.ScalarAttributeTypeS
	for name, in := range map[string]*awsdynamodb.CreateTableInput{"WithoutIndex": withoutIndex, "StringSortKey": stringSortKey} {
		t.Run(name, func(t *testing.T) {
			_, err := client.CreateTable(t.Context(), in)
			require.NoError(t, err)
			deleteTableAtCleanup(t, client, *in.TableName)
			_, err = dynamodb.New(t.Context(), client, *in.TableName, dynamodb.Options{CreateTable: true})
			require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
			assert.Contains(t, err.Error(), "not created for this driver")
		})
	}
	t.Run("NilClient", func(t *testing.T) {
		_, err := dynamodb.New(t.Context(), nil, "events", dynamodb.Options{})
		require.ErrorIs(t, err, eventstore.ErrInvalidArgument)
	})
}

// TestCloseLeavesTheClient: a client passed to New stays usable after the
// Store is closed.
func TestCloseLeavesTheClient(t *testing.T) {
	client := newClient(t, nil)
	store, d := newStore(t, client, dynamodb.Options{})
	require.NoError(t, store.Close())
	require.NoError(t, store.Close())
	_, err := client.DescribeTable(t.Context(), &awsdynamodb.DescribeTableInput{TableName: aws.String(d.Table())})
	require.NoError(t, err)
	_, err = store.Append(t.Context(), "Order-1", eventstore.Any, eventstore.NewEvent("Late", nil))
	assert.True(t, errors.Is(err, eventstore.ErrClosed), "append after Close: %v", err)
}

func TestCreateTableConcurrently(t *testing.T) {
	client := newClient(t, nil)
	table := randomTable()
	deleteTableAtCleanup(t, client, table)
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			d, err := dynamodb.New(t.Context(), client, table, dynamodb.Options{CreateTable: true})
			if err == nil {
				d.Close()
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		require.NoError(t, <-errs)
	}
}

func TestValidateTableName(t *testing.T) {
	for _, ok := range []string{"abc", "Orders_v1.prod-2", strings.Repeat("a", 255)} {
		assert.NoError(t, dynamodb.ValidateTableName(ok), ok)
	}
	for _, bad := range []string{"", "ab", "a b", "orders/1", "é-events", strings.Repeat("a", 256)} {
		assert.ErrorIs(t, dynamodb.ValidateTableName(bad), eventstore.ErrInvalidArgument, bad)
	}
}

// tableExists reports whether DescribeTable finds table.
func tableExists(t *testing.T, client *awsdynamodb.Client, table string) bool {
	t.Helper()
	_, err := client.DescribeTable(t.Context(), &awsdynamodb.DescribeTableInput{TableName: aws.String(table)})
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// itemCount returns how many items table holds.
func itemCount(t *testing.T, client *awsdynamodb.Client, table string) int32 {
	t.Helper()
	out, err := client.Scan(t.Context(), &awsdynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	require.NoError(t, err)
	return out.Count
}

// TestOpenMustExist: with must_exist (URL or option) Open creates and
// writes nothing. A missing table, even with create_table, and a table no
// driver has set up (no layout item) are ErrStoreNotFound; a store that
// exists opens.
func TestOpenMustExist(t *testing.T) {
	endpoint := testenv.MustHaveDynamoDB(t)
	useTestCredentials(t)
	client := newClient(t, nil)
	base := "?region=us-east-1&endpoint=" + url.QueryEscape(endpoint)

	// A store set up by a driver, with one event.
	existing := randomTable()
	deleteTableAtCleanup(t, client, existing)
	s, err := eventstore.Open(t.Context(), "dynamodb://"+existing+base+"&create_table=true")
	require.NoError(t, err)
	_, err = s.Append(t.Context(), "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", nil))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	// A table with the driver's schema that no driver has opened.
	bare := randomTable()
	_, err = client.CreateTable(t.Context(), dynamodb.CreateTableInput(bare))
	require.NoError(t, err)
	deleteTableAtCleanup(t, client, bare)

	for _, tc := range []struct {
		name  string
		table string
		query string
		opts  dynamodb.Options
		found bool
	}{
		{name: "MissingURL", table: randomTable(), query: "&must_exist=true"},
		{name: "MissingOption", table: randomTable(), opts: dynamodb.Options{MustExist: true}},
		{name: "MissingWithCreateTableURL", table: randomTable(), query: "&must_exist=true&create_table=true"},
		{name: "MissingWithCreateTableOption", table: randomTable(), query: "&create_table=true", opts: dynamodb.Options{MustExist: true}},
		{name: "MissingWithoutMustExist", table: randomTable(), query: "&must_exist=false"},
		{name: "NotSetUp", table: bare, query: "&must_exist=true"},
		{name: "NotSetUpWithCreateTable", table: bare, query: "&create_table=true", opts: dynamodb.Options{MustExist: true}},
		{name: "Existing", table: existing, query: "&must_exist=true", found: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			existed := tableExists(t, client, tc.table)
			var items int32
			if existed {
				items = itemCount(t, client, tc.table)
			}
			d, err := dynamodb.Open(t.Context(), "dynamodb://"+tc.table+base+tc.query, tc.opts)
			if !tc.found {
				require.ErrorIs(t, err, eventstore.ErrStoreNotFound)
				assert.Contains(t, err.Error(), tc.table)
			} else {
				require.NoError(t, err)
				s := eventstore.New(d, eventstore.Options{})
				v, err := s.StreamVersion(t.Context(), "Order-1")
				require.NoError(t, err)
				assert.Equal(t, uint64(1), v)
				require.NoError(t, s.Close())
			}
			require.Equal(t, existed, tableExists(t, client, tc.table), "Open created or deleted the table")
			if existed {
				assert.Equal(t, items, itemCount(t, client, tc.table), "Open wrote to the table")
			}
		})
	}
}

// TestOpenTimeout: an endpoint that accepts connections but never answers
// fails Open after the connect timeout, and one where nothing listens fails
// it once the retries are spent. The test's own deadline is far longer than
// the timeouts: only a hang reaches it.
func TestOpenTimeout(t *testing.T) {
	useTestCredentials(t)
	hole, closed := "http://"+testenv.SilentServer(t), "http://"+testenv.ClosedAddr(t)
	for _, tc := range []struct {
		name    string
		url     string
		opts    dynamodb.Options
		timeout bool   // the error must match context.DeadlineExceeded
		says    string // and mention this
	}{
		{"BlackHoleURL", "dynamodb://events?region=us-east-1&connect_timeout=1&endpoint=" + url.QueryEscape(hole), dynamodb.Options{}, true, "no answer from DynamoDB within 1s"},
		{"BlackHoleOption", "dynamodb://events?region=us-east-1&endpoint=" + url.QueryEscape(hole), dynamodb.Options{ConnectTimeout: 300 * time.Millisecond}, true, "within 300ms"},
		{"BlackHoleCreateTable", "dynamodb://events?region=us-east-1&create_table=true&connect_timeout=1&endpoint=" + url.QueryEscape(hole), dynamodb.Options{}, true, "connect_timeout"},
		{"NothingListening", "dynamodb://events?region=us-east-1&max_attempts=3&endpoint=" + url.QueryEscape(closed), dynamodb.Options{}, false, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			_, err := dynamodb.Open(ctx, tc.url, tc.opts)
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "Open hung until the test's deadline")
			assert.Equal(t, tc.timeout, errors.Is(err, context.DeadlineExceeded), "matches context.DeadlineExceeded: %v", err)
			assert.NotErrorIs(t, err, eventstore.ErrStoreNotFound)
			assert.Contains(t, err.Error(), tc.says)
			assert.NotContains(t, err.Error(), "test-secret-never-shown")
		})
	}
	t.Run("New", func(t *testing.T) {
		// A client of the application's without timeouts of its own: the
		// first request is still bounded.
		client := awsdynamodb.New(awsdynamodb.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(hole),
			Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		_, err := dynamodb.New(ctx, client, "events", dynamodb.Options{ConnectTimeout: 300 * time.Millisecond})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, ctx.Err(), "New hung until the test's deadline")
	})
}

// switchProxy forwards TCP connections to a server until swallow is
// called; from then on it drops the connections it forwarded and accepts
// new ones without ever answering.
type switchProxy struct {
	lis      net.Listener
	upstream string

	mu      sync.Mutex // protects everything below
	swallow bool
	conns   []net.Conn
}

func newSwitchProxy(t *testing.T, upstream string) *switchProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &switchProxy{lis: lis, upstream: upstream}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			swallow := p.swallow
			p.mu.Unlock()
			if swallow {
				continue
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			wg.Go(func() { io.Copy(up, c); up.Close() })
			wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(func() {
		lis.Close()
		p.closeAll()
		wg.Wait()
	})
	return p
}

func (p *switchProxy) endpoint() string { return "http://" + p.lis.Addr().String() }

func (p *switchProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *switchProxy) swallowFromNow() {
	p.mu.Lock()
	p.swallow = true
	p.mu.Unlock()
	p.closeAll()
}

// TestRequestTimeout: once the endpoint stops answering, a request fails
// when no response has begun within the connect timeout, with an error
// matching context.DeadlineExceeded, and is not tried again (a timeout is
// not retried, so MaxAttempts does not multiply it).
func TestRequestTimeout(t *testing.T) {
	endpoint := testenv.MustHaveDynamoDB(t)
	useTestCredentials(t)
	client := newClient(t, nil)
	table := randomTable()
	deleteTableAtCleanup(t, client, table)
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	proxy := newSwitchProxy(t, u.Host)
	d, err := dynamodb.Open(t.Context(), "dynamodb://"+table+"?region=us-east-1&create_table=true&connect_timeout=1&endpoint="+url.QueryEscape(proxy.endpoint()), dynamodb.Options{})
	require.NoError(t, err)
	var mu sync.Mutex // protects timeouts
	timeouts := 0
	dynamodb.SetRetryHook(d, func(op string, err error) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			mu.Lock()
			timeouts++
			mu.Unlock()
		}
	})
	s := eventstore.New(d, eventstore.Options{})
	defer s.Close()
	_, err = s.StreamVersion(t.Context(), "Order-1")
	require.NoError(t, err)

	proxy.swallowFromNow()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, err = s.StreamVersion(ctx, "Order-1")
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "the request hung until the test's deadline")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "want a timeout, got %v", err)
	mu.Lock()
	defer mu.Unlock()
	assert.Zero(t, timeouts, "tries after a timeout")
}
