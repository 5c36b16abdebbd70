package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventkit/eventstore/internal/testenv"
)

// DynamoDBClient returns a client for the test server (DynamoDB Local) with
// dummy static credentials in us-east-1; optFns edit its options last.
// Without a server it skips t (fails it under CI=true).
func DynamoDBClient(t testing.TB, optFns ...func(*awsdynamodb.Options)) *awsdynamodb.Client {
	t.Helper()
	endpoint := testenv.MustHaveDynamoDB(t)
	return awsdynamodb.New(awsdynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	}, optFns...)
}

// DynamoDBTable returns a fresh table name starting with prefix, and deletes
// that table (if anything created it) when t ends.
func DynamoDBTable(t testing.TB, client *awsdynamodb.Client, prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	table := prefix + hex.EncodeToString(b[:])
	DeleteTableAtCleanup(t, client, table)
	return table
}

// DeleteTableAtCleanup deletes table when t ends, under a deadline of its
// own (t.Context() is done by then); a table that does not exist is fine.
func DeleteTableAtCleanup(t testing.TB, client *awsdynamodb.Client, table string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := client.DeleteTable(ctx, &awsdynamodb.DeleteTableInput{TableName: aws.String(table)})
		var notFound *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			t.Errorf("storetest: delete table %s: %v", table, err)
		}
	})
}
