--[[
  KEYS: ready, delayed, inflight, dead, notify.
  ARGV: (none) → pushes one wake-up token for the next long poll.
]]
--- @include "includes/queue-helpers"

wake()
return 1
