// UTF-8 helpers shared by the tokenizers: strict decoding (text is untrusted),
// the GPT-2 byte <-> unicode mapping used by byte-level BPE vocabularies, and
// NFC normalisation through utf8proc.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace glassbox::unicode {

// Length of the well-formed UTF-8 sequence starting at text[pos], or 0 when
// the bytes there are not one (stray continuation byte, overlong form,
// surrogate, code point above U+10FFFF, truncated sequence).
size_t valid_sequence_length(std::string_view text, size_t pos);

// Decodes the well-formed sequence at text[pos] (the caller has checked it
// with valid_sequence_length).
uint32_t decode_at(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of `cp` (must be a Unicode scalar value).
void append_utf8(std::string& out, uint32_t cp);

// Number of bytes a UTF-8 sequence with this lead byte announces (1 for
// ASCII and for bytes that cannot start a sequence).
size_t announced_length(unsigned char lead);

// GPT-2's reversible byte -> code point table: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100.. in byte order.
const std::array<uint32_t, 256>& byte_to_codepoint();
// The inverse: -1 for code points that no byte maps to.
int codepoint_to_byte(uint32_t cp);
// UTF-8 text of the byte-level symbol for `byte` (e.g. 0x20 -> "Ġ").
const std::string& byte_symbol(uint8_t byte);

// NFC-normalises well-formed UTF-8. Pure ASCII is returned unchanged without
// calling utf8proc.
std::string nfc(std::string_view valid_utf8);

}  // namespace glassbox::unicode
