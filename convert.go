package eventstore

import "github.com/eventkit/eventstore/driver"

// recordedFromDriver returns the application's form of an event a driver read.
func recordedFromDriver(e driver.RecordedEvent) RecordedEvent {
	return RecordedEvent{
		StreamID: e.StreamID, Version: e.Version, Position: Position(e.Position), ID: e.ID,
		Type: e.Type, ContentType: ContentType(e.ContentType), Data: e.Data, Metadata: e.Metadata,
		MetadataContentType: ContentType(e.MetadataContentType), RecordedAt: e.RecordedAt, Tags: e.Tags,
	}
}

// recordedToDriver returns the driver's form of an event to import.
func recordedToDriver(e RecordedEvent) driver.RecordedEvent {
	return driver.RecordedEvent{
		StreamID: e.StreamID, Version: e.Version, Position: driver.Position(e.Position), ID: e.ID,
		Type: e.Type, ContentType: driver.ContentType(e.ContentType), Data: e.Data, Metadata: e.Metadata,
		MetadataContentType: driver.ContentType(e.MetadataContentType), RecordedAt: e.RecordedAt, Tags: e.Tags,
	}
}

// eventToDriver returns the driver's form of an event to append.
func eventToDriver(e Event) driver.Event {
	return driver.Event{ID: e.ID, Type: e.Type, ContentType: driver.ContentType(e.ContentType), Data: e.Data, Metadata: e.Metadata, Tags: e.Tags}
}
