package dynamodb_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
		{"MissingTable", "dynamodb://" + randomTable() + "?region=us-east-1&endpoint=" + ep, nil, "create_table=true"},
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
		var notFound *types.ResourceNotFoundException
		assert.ErrorAs(t, err, &notFound)
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
