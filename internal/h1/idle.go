package h1

// ReadIdle reads into a buffer taken from pool only once something has
// arrived, so no buffer is held while the netpoller waits. It returns the
// buffer (nil if none was taken) and what the read returned.
func (s *Socket) ReadIdle(pool interface {
	Get() any
	Put(any)
}) (*[]byte, int, error) {
	if s.looping {
		return nil, 0, ErrReadInLoop
	}
	s.idlePool = pool
	s.rd = rawCall{}
	err := s.rc.Read(s.idleReadFn)
	p := s.idleBuf
	s.idleBuf, s.idlePool, s.rd.p = nil, nil, nil
	if err != nil {
		return p, 0, err
	}
	n, err := readResult(s.rd.n, s.rd.errno)
	return p, n, err
}

// rawIdleRead is rawRead with a buffer taken for the try and given back
// when the try finds nothing (before the netpoller waits).
func (s *Socket) rawIdleRead(fd uintptr) bool {
	if s.idleBuf == nil {
		s.idleBuf = s.idlePool.Get().(*[]byte)
	}
	s.rd.p = (*s.idleBuf)[:cap(*s.idleBuf)]
	if s.rawRead(fd) {
		return true
	}
	s.idlePool.Put(s.idleBuf)
	s.idleBuf, s.rd.p = nil, nil
	return false
}
