package capture

import (
	"encoding/binary"
	"net/netip"
)

// Synthetic frames for BPF_PROG_TEST_RUN: Ethernet + IPv4/IPv6 + TCP.

type segment struct {
	src, dst netip.AddrPort
	seq      uint32
	ack      uint32 // 0 means 1
	flags    uint8
	payload  []byte
	ihl      uint8 // IPv4 header words; 0 means 5
	fragOff  uint16
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func (s segment) frame() []byte {
	tcp := make([]byte, 20, 20+len(s.payload))
	binary.BigEndian.PutUint16(tcp[0:], s.src.Port())
	binary.BigEndian.PutUint16(tcp[2:], s.dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	ack := s.ack
	if ack == 0 {
		ack = 1
	}
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = s.flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	tcp = append(tcp, s.payload...)

	eth := make([]byte, 14)
	copy(eth[0:6], []byte{0x02, 0, 0, 0, 0, 2})
	copy(eth[6:12], []byte{0x02, 0, 0, 0, 0, 1})

	if s.src.Addr().Is4() {
		binary.BigEndian.PutUint16(eth[12:], 0x0800)
		ihl := s.ihl
		if ihl == 0 {
			ihl = 5
		}
		hl := int(ihl) * 4
		if hl < 20 {
			hl = 20
		}
		ip := make([]byte, hl)
		ip[0] = 4<<4 | ihl
		binary.BigEndian.PutUint16(ip[2:], uint16(hl+len(tcp)))
		binary.BigEndian.PutUint16(ip[6:], s.fragOff)
		ip[8] = 64
		ip[9] = 6
		src, dst := s.src.Addr().As4(), s.dst.Addr().As4()
		copy(ip[12:16], src[:])
		copy(ip[16:20], dst[:])
		binary.BigEndian.PutUint16(ip[10:], csum(ip))
		return append(append(eth, ip...), tcp...)
	}
	binary.BigEndian.PutUint16(eth[12:], 0x86dd)
	ip := make([]byte, 40)
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
	ip[6] = 6
	ip[7] = 64
	src, dst := s.src.Addr().As16(), s.dst.Addr().As16()
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	return append(append(eth, ip...), tcp...)
}
