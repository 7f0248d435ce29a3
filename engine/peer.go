package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gregor-streaming/gregor/raftlog"
)

// Broker-to-broker requests. A state machine asks a peer broker something
// about one group (a lost replica fetching a peer's state; a transaction
// coordinator having a partition's leader write a marker) with callPeer; the answer, an error or a timeout reaches its callback exactly
// once. Messages ride raftlog's transport payloads (Host.SendPeer), so the
// runtime carries them over the peer connection and the simulator over its
// network, lost, delayed and cut like raft messages.
//
// Wire form of one message: kind (request or response), op, call id
// (uvarint), then the op's body. A response's body starts with a status
// byte.

const (
	peerRequest  byte = 1
	peerResponse byte = 2
)

// Peer operations.
const (
	opStateBegin  byte = 1 // a replica's state header at its applied index
	opStateChunk  byte = 2 // a range of a replica's batches
	opWriteMarker byte = 3 // write a transaction marker as the partition's leader (answered once applied)
	opVerifyTxn   byte = 4 // does a transaction hold a partition (txn_coordinator.go)
)

// Response statuses.
const (
	peerOK      byte = 0
	peerRefused byte = 1 // the peer cannot serve it now (no replica, lost, behind)
)

var errPeerRefused = errors.New("engine: peer refused the request")
var errPeerTimeout = errors.New("engine: peer request timed out")

type peerCall struct {
	to    uint64
	group raftlog.GroupID
	op    byte
	fn    func(body []byte, err error)
	timer *timer
}

// callPeer sends op with body about group to broker to; fn gets the
// response body, errPeerRefused, or errPeerTimeout after timeoutMs.
func (b *Broker) callPeer(to int32, group raftlog.GroupID, op byte, body []byte, timeoutMs int64, fn func([]byte, error)) {
	b.callSeq++
	id := b.callSeq
	msg := []byte{peerRequest, op}
	msg = binary.AppendUvarint(msg, id)
	msg = append(msg, body...)
	c := &peerCall{to: uint64(to), group: group, op: op, fn: fn}
	c.timer = b.after(timeoutMs, func() {
		if _, ok := b.calls[id]; ok {
			delete(b.calls, id)
			fn(nil, errPeerTimeout)
		}
	})
	b.calls[id] = c
	b.host.SendPeer(uint64(to), group, msg)
}

// CarriesMarkerRequest reports whether a transport payload holds a
// transaction coordinator's request that a partition's leader write a
// marker (the simulator echoes some of them late: the late-marker fault).
func CarriesMarkerRequest(payload []byte) bool {
	return carriesPeer(payload, peerRequest, opWriteMarker)
}

// CarriesStateRequest and CarriesStateAnswer report whether a transport
// payload holds a repairing replica's request for a peer's state header,
// or a peer's answer to one (the simulator's peer-answer fault holds
// answers to a crashed broker until it asks again).
func CarriesStateRequest(payload []byte) bool { return carriesPeer(payload, peerRequest, opStateBegin) }

// CarriesStateAnswer: see CarriesStateRequest.
func CarriesStateAnswer(payload []byte) bool { return carriesPeer(payload, peerResponse, opStateBegin) }

func carriesPeer(payload []byte, kind, op byte) bool {
	found := false
	_ = raftlog.PeerMessages(payload, func(_ raftlog.GroupID, d []byte) {
		found = found || len(d) >= 2 && d[0] == kind && d[1] == op
	})
	return found
}

// onPeer handles one received broker-to-broker message.
func (b *Broker) onPeer(m raftlog.PeerMsg) {
	d := m.Data
	if len(d) < 3 {
		b.env.Logf("engine: short peer message from %d", m.From)
		return
	}
	kind, op := d[0], d[1]
	id, n := binary.Uvarint(d[2:])
	if n <= 0 {
		b.env.Logf("engine: bad peer message from %d", m.From)
		return
	}
	body := d[2+n:]
	switch kind {
	case peerRequest:
		b.servePeer(m.Group, op, body, func(status byte, out []byte) {
			resp := []byte{peerResponse, op}
			resp = binary.AppendUvarint(resp, id)
			resp = append(resp, status)
			resp = append(resp, out...)
			b.host.SendPeer(m.From, m.Group, resp)
		})
	case peerResponse:
		// Call ids start from the boot number (NewBroker), so a late
		// answer to an earlier incarnation's call is not taken for this
		// one's; and an answer must come from the broker, group and op
		// asked (TestRegression_PeerResponseAcrossRestart: a restarted
		// broker installed another partition's checkpoint).
		c, ok := b.calls[id]
		if !ok || len(body) == 0 || (c.to != m.From || c.group != m.Group || c.op != op) && !b.cfg.Unsafe.PeerAnswerByID {
			return // timed out already, a duplicate, or not this call's
		}
		delete(b.calls, id)
		c.timer.stop()
		if body[0] != peerOK {
			c.fn(nil, errPeerRefused)
			return
		}
		c.fn(body[1:], nil)
	}
}

// servePeer answers a peer's request through reply, at once or (a
// marker) once it has applied.
func (b *Broker) servePeer(group raftlog.GroupID, op byte, body []byte, reply func(status byte, out []byte)) {
	p, ok := b.parts[group]
	if !ok {
		reply(peerRefused, nil)
		return
	}
	var out []byte
	var err error
	switch op {
	case opStateBegin:
		out, err = p.serveStateBegin(body)
	case opStateChunk:
		out, err = p.serveStateChunk(body)
	case opWriteMarker:
		p.serveMarker(body, func(code int16) { reply(peerOK, binary.BigEndian.AppendUint16(nil, uint16(code))) })
		return
	case opVerifyTxn:
		p.serveVerifyTxn(body, func(code int16) { reply(peerOK, binary.BigEndian.AppendUint16(nil, uint16(code))) })
		return
	default:
		err = fmt.Errorf("unknown op %d", op)
	}
	if err != nil {
		reply(peerRefused, nil)
		return
	}
	reply(peerOK, out)
}
