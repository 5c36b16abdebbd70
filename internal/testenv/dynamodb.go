package testenv

import (
	"os"
	"testing"
)

// DynamoDBEndpointVar is the variable that names the DynamoDB endpoint tests use.
const DynamoDBEndpointVar = "EVENTSTORE_DYNAMODB_ENDPOINT"

// MustHaveDynamoDB returns the endpoint URL of the DynamoDB server to test
// against (normally DynamoDB Local), from EVENTSTORE_DYNAMODB_ENDPOINT. When
// it is unset it skips t, saying how to start a server; under CI=true it
// fails t instead. Tests use dummy static credentials and region us-east-1,
// create their own tables and delete them when they end.
func MustHaveDynamoDB(t testing.TB) string {
	t.Helper()
	u := os.Getenv(DynamoDBEndpointVar)
	if u == "" {
		missing(t, DynamoDBEndpointVar+" is not set: run `make test` (it starts DynamoDB Local), "+
			"or start it with `scripts/dynamodb.sh start /tmp/es-ddb` (or `docker compose up -d dynamodb-local`) "+
			"and export "+DynamoDBEndpointVar+" to the URL it prints")
	}
	return u
}
