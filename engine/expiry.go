package engine

import (
	"encoding/binary"
	"errors"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregor-streaming/gregor/engine/producers"
	"github.com/gregor-streaming/gregor/engine/rsm"
)

// Idempotent producer expiry (Kafka's producer.id.expiration.ms). Time
// never enters Apply: the leader looks at its clock every
// ProducerIDExpirationCheckMs, finds the producers whose last batch's
// timestamp is at least ProducerIDExpirationMs old, and proposes an entry
// naming them with the timestamps it judged by. Every replica drops exactly
// those whose state has not changed since (a batch that applied first keeps
// its producer), so all replicas drop the same ones.

// expireProducersMax bounds the producers named by one expiry entry.
const expireProducersMax = 1000

// maybeExpireProducers runs on the leader's ticks.
func (p *partition) maybeExpireProducers() {
	now := p.b.nowMillis()
	if p.lost || p.expiring || now < p.nextExpiryCheck {
		return
	}
	p.nextExpiryCheck = now + p.b.cfg.ProducerIDExpirationCheckMs
	expired := p.producers.Expired(now, p.b.cfg.ProducerIDExpirationMs, expireProducersMax)
	if len(expired) == 0 {
		return
	}
	body := binary.AppendUvarint(nil, uint64(len(expired)))
	for _, x := range expired {
		body = binary.AppendVarint(body, x.PID)
		body = binary.AppendVarint(body, x.LastTimestamp)
	}
	h := p.b.prop.Next(rsm.KindPartition, opExpireProducers)
	if err := p.b.host.ProposeAsLeader(p.group, h.Encode(body)); err != nil {
		return
	}
	p.expiring = true
	p.pending.Add(h.Seq, func(produceResult) { p.expiring = false })
}

var errBadExpiry = errors.New("engine: corrupt producer expiry entry")

// applyExpireProducers drops the producers an expiry entry names, each if
// its state is still the one the leader judged.
func (p *partition) applyExpireProducers(body []byte) error {
	expired, err := p.expireProducers(body)
	if err != nil || !expired {
		return err
	}
	// The entry stores no batch, and recovery rebuilds producer state from
	// the checkpoint and the batches after it, skipping every entry up to
	// the last batch's tag: without a checkpoint here, a batch applied
	// after this entry would make recovery skip it and bring the expired
	// producers back (TestRegression_ProducerExpiryLostAtRecovery).
	if _, err := p.Sync(); err != nil || p.storageErr != nil {
		return kerr.KafkaStorageError
	}
	return nil
}

// expireProducers decodes an expiry entry and drops the producers it
// names that are still as the leader saw them; expired reports whether
// any was.
func (p *partition) expireProducers(body []byte) (expired bool, err error) {
	r := &byteReader{b: body}
	n := r.uvarint()
	if n > expireProducersMax {
		return false, errBadExpiry
	}
	var xs []producers.Expiry
	for range n {
		xs = append(xs, producers.Expiry{PID: r.varint(), LastTimestamp: r.varint()})
	}
	if r.err != nil || len(r.b) != 0 {
		return false, errBadExpiry
	}
	for _, x := range xs {
		expired = p.producers.Expire(x.PID, x.LastTimestamp) || expired
	}
	return expired, nil
}
