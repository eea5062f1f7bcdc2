// Package gossipv1 is the generated Go code of the gossip.v1 wire
// protocol's messages (gossip.proto): the seed's GossipMessage and
// GossipAck, the streaming Envelope and the client and membership APIs'
// requests and responses. It depends on the protobuf runtime only, not on
// gRPC; the services (the seed's Gossip with PutMessageToClient,
// NodeService, MembershipService) are generated into gossipv1grpc.
// Regenerate both with `make proto`; CI fails if the committed code drifts
// from the .proto files.
package gossipv1
