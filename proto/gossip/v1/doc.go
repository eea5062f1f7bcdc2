// Package gossipv1 is the generated Go code of the gossip.v1 wire protocol
// (gossip_rpc.proto): the Gossip service with the seed's
// PutMessageToClient RPC, GossipMessage and GossipAck. Regenerate it with
// `make proto`; CI fails if the committed code drifts from the .proto.
package gossipv1
