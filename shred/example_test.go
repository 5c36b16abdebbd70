package shred_test

import (
	"context"
	"fmt"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/codec"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/shred"
)

// Example protects a customer's name and e-mail with a key of the customer,
// appends through a codec registry, forgets the customer, and reads the
// event back erased.
func Example() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), eventstore.Options{})
	defer store.Close()

	// Registered is the event: customer names the subject, name and email
	// are protected, and the embedded Erasure says when they were erased.
	type Registered struct {
		shred.Erasure
		Customer string `json:"customer" shred:"subject"`
		Name     string `json:"name" shred:"pii"`
		Email    string `json:"email" shred:"pii"`
		Plan     string `json:"plan"`
	}
	rule, err := shred.RuleOf[Registered]()
	if err != nil {
		panic(err)
	}
	// The keys live in the store itself, outside its log.
	sh, err := shred.New(shred.Options{Keys: store, Rules: map[string]shred.Rule{"Registered": rule}})
	if err != nil {
		panic(err)
	}
	reg := codec.New(codec.WithTransform(sh))
	if err := codec.Register[Registered](reg, "Registered"); err != nil {
		panic(err)
	}

	ev, err := reg.Encode(ctx, "Customer-42", Registered{Customer: "c-42", Name: "Ada Lovelace", Email: "ada@example.com", Plan: "gold"})
	if err != nil {
		panic(err)
	}
	if _, err := store.Append(ctx, "Customer-42", eventstore.NoStream, ev); err != nil {
		panic(err)
	}
	read := func() {
		for m, err := range reg.ReadStream(ctx, store, "Customer-42", eventstore.ReadStreamOptions{}) {
			if err != nil {
				panic(err)
			}
			r := m.Value.(Registered)
			fmt.Printf("erased=%v name=%q email=%q plan=%q\n", r.Erased, r.Name, r.Email, r.Plan)
		}
	}
	read()

	if err := sh.Forget(ctx, "c-42"); err != nil {
		panic(err)
	}
	read()
	// Output:
	// erased=false name="Ada Lovelace" email="ada@example.com" plan="gold"
	// erased=true name="" email="" plan="gold"
}
