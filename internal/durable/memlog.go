package durable

// memLog is the in-memory log's records: fixed-size chunks, so that
// appending never copies what is already there (a growing slice would
// copy the whole retained window at each doubling) and dropping the
// oldest frees whole chunks.
type memLog struct {
	chunks [][]Record // each of capacity memChunk; the first from head on
	head   int        // index of the oldest record in chunks[0]
	n      int        // records held
}

const memChunk = 1024

func (m *memLog) len() int { return m.n }

func (m *memLog) push(r Record) {
	if len(m.chunks) == 0 || len(m.chunks[len(m.chunks)-1]) == memChunk {
		m.chunks = append(m.chunks, make([]Record, 0, memChunk))
	}
	last := &m.chunks[len(m.chunks)-1]
	*last = append(*last, r)
	m.n++
}

// at is the i-th record held (0: the oldest).
func (m *memLog) at(i int) *Record {
	i += m.head
	return &m.chunks[i/memChunk][i%memChunk]
}

// drop removes the oldest record.
func (m *memLog) drop() {
	m.chunks[0][m.head] = Record{}
	m.head++
	m.n--
	if m.head == memChunk || m.n == 0 && m.head == len(m.chunks[0]) {
		m.chunks[0] = nil
		m.chunks = m.chunks[1:]
		m.head = 0
	}
}
