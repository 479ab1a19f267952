module butlerd.test/gowireoracle

go 1.26

require go.chromium.org/luci v0.0.0-20260822014153-22eba00a8fe4
