package dynamodb_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
)

// Open a store by URL; the driver registers the dynamodb:// scheme. Here the
// table lives in DynamoDB Local and is created on first use; credentials come
// from the default AWS chain (DynamoDB Local accepts any).
func Example() {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, "dynamodb://orders?region=us-east-1&endpoint=http://127.0.0.1:8000&create_table=true")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	res, err := store.Append(ctx, "Order-42", eventstore.NoStream,
		eventstore.NewEvent("OrderPlaced", []byte(`{"total":42}`)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("order at version", res.Version, "position", res.Position)
}

// Reuse a client the application already configured. The driver does not
// close it.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		log.Fatal(err)
	}
	client := awsdynamodb.NewFromConfig(cfg)

	d, err := dynamodb.New(ctx, client, "billing-events", dynamodb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store := eventstore.New(d, eventstore.Options{})
	defer store.Close()

	var c *awsdynamodb.Client
	fmt.Println(store.As(&c) && c == client) // the native client
}

// Create the table with infrastructure code instead of CreateTable: the
// schema the driver needs.
func ExampleCreateTableInput() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := awsdynamodb.NewFromConfig(cfg)
	if _, err := client.CreateTable(ctx, dynamodb.CreateTableInput("orders")); err != nil {
		log.Fatal(err)
	}
}
