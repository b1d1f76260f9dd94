"""Lua scripts: the few steps that must be atomic on the server.

Each touches the keys of one shard only (one hash tag, one Cluster slot).
They are sent with ``EVAL`` (Redis caches them by digest), so a restarted
server or a failover never meets a missing script.

* :data:`TRIM`: enforce the length cap and remove acknowledged entries,
  counting every entry that was not acknowledged (never delivered, or pending)
  into the shard's ``trim`` hash. Redis's own ``MAXLEN`` cannot say what it
  evicted; 8.2's ``ACKED`` policy can refuse to evict, but 7.x has neither.
* :data:`KEEP_LEASE`: re-claim (``XCLAIM ... JUSTID``, which resets idle time
  without counting a delivery) only the entries this consumer still owns, so a
  slow forwarder never takes back an entry a peer has already claimed.
* :data:`DROP_IDLE_CONSUMER`: ``XGROUP DELCONSUMER`` only when the consumer has
  nothing pending, checked in the same atomic step (a separate check races).
* :data:`REPLAY`: move one dead-letter entry back to its events stream, once.
"""

from __future__ import annotations

__all__ = ["DROP_IDLE_CONSUMER", "KEEP_LEASE", "REPLAY", "TRIM"]

_IDS = """
local function parse_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function id_lt(a, b)
  local am, as = parse_id(a)
  local bm, bs = parse_id(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local function id_next(id)
  local ms, seq = parse_id(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
"""

#: KEYS: events stream, trim hash. ARGV: group, cap (max entries), mode ("cap" or "safe").
#: Returns {acknowledged entries removed, undelivered entries lost, pending entries lost}.
TRIM = (
    _IDS
    + """
local stream, stats = KEYS[1], KEYS[2]
local group, cap, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local len = redis.call('XLEN', stream)
if len == 0 or (mode == 'cap' and len <= cap) then return {0, 0, 0} end
-- Entries below `boundary` are delivered to, and acknowledged by, every group.
local boundary = nil
local last_delivered = nil
local groups = redis.call('XINFO', 'GROUPS', stream)
for _, info in ipairs(groups) do
  local name = field(info, 'name')
  local last = field(info, 'last-delivered-id')
  local candidate = id_next(last)
  if tonumber(field(info, 'pending')) > 0 then
    candidate = redis.call('XPENDING', stream, name)[2]
  end
  if boundary == nil or id_lt(candidate, boundary) then boundary = candidate end
  if name == group then last_delivered = last end
end
local acked = 0
if boundary ~= nil and last_delivered ~= nil then
  acked = redis.call('XTRIM', stream, 'MINID', boundary)
  len = len - acked
end
if mode ~= 'cap' or len <= cap then
  if acked > 0 then redis.call('HINCRBY', stats, 'acked', acked) end
  return {acked, 0, 0}
end
-- Over the cap with unacknowledged entries: evict the oldest, counting each by its state.
local victims = redis.call('XRANGE', stream, '-', '+', 'COUNT', len - cap)
local undelivered, pending = 0, 0
for _, entry in ipairs(victims) do
  local id = entry[1]
  if last_delivered == nil or id_lt(last_delivered, id) then
    undelivered = undelivered + 1
  elseif #redis.call('XPENDING', stream, group, id, id, 1) > 0 then
    pending = pending + 1
  else
    acked = acked + 1
  end
end
redis.call('XTRIM', stream, 'MINID', id_next(victims[#victims][1]))
if acked > 0 then redis.call('HINCRBY', stats, 'acked', acked) end
if undelivered > 0 then redis.call('HINCRBY', stats, 'lost_undelivered', undelivered) end
if pending > 0 then redis.call('HINCRBY', stats, 'lost_pending', pending) end
return {acked, undelivered, pending}
"""
)

#: KEYS: events stream. ARGV: group, consumer, ids... Returns the ids still owned (their idle reset).
KEEP_LEASE = """
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local kept = {}
for i = 3, #ARGV do
  local info = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1)
  if info[1] ~= nil and info[1][2] == me then
    local claimed = redis.call('XCLAIM', stream, group, me, 0, ARGV[i], 'JUSTID')
    if claimed[1] ~= nil then kept[#kept + 1] = ARGV[i] end
  end
end
return kept
"""

#: KEYS: events stream. ARGV: group, consumer. Returns 1 when deleted, 0 when it has pending entries.
DROP_IDLE_CONSUMER = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

#: KEYS: dead-letter stream, events stream. ARGV: dead-letter id. Returns the new events id or false.
#: The entry keeps its body, url, headers and idempotency key; it gets a fresh delivery count.
REPLAY = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
local flat = found[1][2]
local keep = {b = true, u = true, h = true, n = true, p = true, q = true, t = true, v = true}
local fields = {}
for i = 1, #flat, 2 do
  if keep[flat[i]] then
    fields[#fields + 1] = flat[i]
    fields[#fields + 1] = flat[i + 1]
  end
end
fields[#fields + 1] = 'r'
fields[#fields + 1] = ARGV[1]
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"""
