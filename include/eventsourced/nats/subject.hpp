// Where eventsourced::nats puts an event: subject `<namespace>.<token of the event type>`.
//
// A NATS subject token may not be empty nor contain '.', '*', '>' or white space, but an event
// type may ("player.created", "Level Up"). The token of a type is the type with every byte that
// is not an ASCII letter, digit, '_' or '-' written as '%' and two upper-case hex digits:
//
//   "PlayerCreated"  -> "PlayerCreated"
//   "player.created" -> "player%2Ecreated"
//   "Level Up"       -> "Level%20Up"
//   "50%"            -> "50%25"
//
// The encoding is one-to-one ('%' itself is encoded), so a consumer outside this library can
// subscribe to one type's subject, and decode_subject_token() gives the type back.
//
// A namespace is one subject token from [A-Za-z0-9_-], at most 64 characters; a JetStream
// bus also uses it as its stream's name.
//
// \par Thread safety
// Pure functions: safe from any thread.
//
// \par Exceptions
// Each throws invalid_argument_error for an invalid argument, and nothing else of its own.
#pragma once

#include <string>
#include <string_view>

namespace eventsourced {

// The subject token of an event type (see above). Throws invalid_argument_error for an empty type.
std::string encode_subject_token(std::string_view type);

// The event type a token encodes. Throws invalid_argument_error for a token that no type encodes
// to (a bad escape, or a byte that would have been escaped).
std::string decode_subject_token(std::string_view token);

// Throws invalid_argument_error unless ns is a valid namespace (see above).
void check_nats_namespace(std::string_view ns);

// `<ns>.<encode_subject_token(type)>`. Throws invalid_argument_error for an invalid namespace or
// an empty type.
std::string event_subject(std::string_view ns, std::string_view type);

}  // namespace eventsourced
