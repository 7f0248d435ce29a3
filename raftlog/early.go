package raftlog

// Limits on messages kept for groups not created yet.
const (
	earlyGroupsMax   = 1024
	earlyPerGroupMax = 16
)

func (h *Host) keepEarly(e Envelope) {
	if e.Msg == nil {
		return
	}
	if _, ok := h.recovered[e.Group]; ok {
		// A recovered group waits for its state machine; raft resends.
		return
	}
	q, ok := h.early[e.Group]
	if !ok && len(h.early) >= earlyGroupsMax {
		return
	}
	if len(q) >= earlyPerGroupMax {
		q = q[1:]
	}
	h.early[e.Group] = append(q, e.Msg)
}
