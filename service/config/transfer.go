package config

// Transfer is a set of allowed data directions between the user's device
// (client) and the remote host (server). It is used for both clipboard
// redirection and file transfer, at every level that can restrict them:
// the host/resource, the User Portal and the client policy.
type Transfer string

// The four direction sets, as stored and as shown in the admin API.
const (
	TransferDisabled       Transfer = "disabled"
	TransferClientToServer Transfer = "client-to-server"
	TransferServerToClient Transfer = "server-to-client"
	TransferBidirectional  Transfer = "bidirectional"
)

// Transfers lists every valid Transfer value, in the order the GUI shows them.
var Transfers = []Transfer{TransferDisabled, TransferClientToServer, TransferServerToClient, TransferBidirectional}

// Valid reports whether t is one of the four known values.
func (t Transfer) Valid() bool {
	switch t {
	case TransferDisabled, TransferClientToServer, TransferServerToClient, TransferBidirectional:
		return true
	}
	return false
}

// ClientToServer reports whether data may flow from the user's device to the host.
func (t Transfer) ClientToServer() bool {
	return t == TransferClientToServer || t == TransferBidirectional
}

// ServerToClient reports whether data may flow from the host to the user's device.
func (t Transfer) ServerToClient() bool {
	return t == TransferServerToClient || t == TransferBidirectional
}

// TransferOf builds the set that allows exactly the given directions.
func TransferOf(clientToServer, serverToClient bool) Transfer {
	switch {
	case clientToServer && serverToClient:
		return TransferBidirectional
	case clientToServer:
		return TransferClientToServer
	case serverToClient:
		return TransferServerToClient
	}
	return TransferDisabled
}

// Intersect returns the directions both t and u allow. An unknown value
// allows nothing, so a corrupt setting fails closed.
func (t Transfer) Intersect(u Transfer) Transfer {
	return TransferOf(t.ClientToServer() && u.ClientToServer(), t.ServerToClient() && u.ServerToClient())
}
