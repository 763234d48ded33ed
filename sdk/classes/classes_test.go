package classes

import "testing"

func TestSplit(t *testing.T) {
	tests := []struct {
		id   int
		base int
		w    Weather
		ok   bool
		name string
	}{
		{0, 0, Norm, true, "ArmorVehicle"},
		{16, 16, Norm, true, "Caponier"},
		{17, 0, 0, false, "Reserved-17"},
		{20, 0, Wint, true, "ArmorVehicle(Wint)"},
		{21, 1, Wint, true, "Truck(Wint)"},
		{36, 16, Wint, true, "Caponier(Wint)"},
		{40, 0, Night, true, "ArmorVehicle(Night)"},
		{56, 16, Night, true, "Caponier(Night)"},
		{57, 0, 0, false, "Reserved-57"},
		{60, 0, 0, false, "Reserved-60"},
		{79, 0, 0, false, "Reserved-79"},
		{-1, 0, 0, false, "Reserved--1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, w, ok := Split(tc.id)
			if ok != tc.ok || (ok && (b != tc.base || w != tc.w)) {
				t.Fatalf("Split(%d) = %d, %v, %v; want %d, %v, %v", tc.id, b, w, ok, tc.base, tc.w, tc.ok)
			}
			if got := Name(tc.id); got != tc.name {
				t.Fatalf("Name(%d) = %q, want %q", tc.id, got, tc.name)
			}
			if ok && ID(b, w) != tc.id {
				t.Fatalf("ID(%d, %v) = %d", b, w, ID(b, w))
			}
		})
	}
}

func TestCounts(t *testing.T) {
	if NumBase != 17 {
		t.Fatalf("NumBase = %d", NumBase)
	}
	used := 0
	names := Names()
	seen := map[string]bool{}
	for i, n := range names {
		if Used(i) {
			used++
		}
		if seen[n] {
			t.Fatalf("duplicate name %q", n)
		}
		seen[n] = true
		if id, ok := Lookup(n); !ok || id != i {
			t.Fatalf("Lookup(%q) = %d, %v", n, id, ok)
		}
	}
	if len(names) != Slots || used != 51 {
		t.Fatalf("slots %d used %d", len(names), used)
	}
}

func TestParseWeather(t *testing.T) {
	for _, w := range Weathers {
		got, err := ParseWeather(w.String())
		if err != nil || got != w {
			t.Fatalf("ParseWeather(%v) = %v, %v", w, got, err)
		}
	}
	if _, err := ParseWeather("Rain"); err == nil {
		t.Fatal("want error for Rain")
	}
}
