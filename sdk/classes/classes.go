// Package classes is the Azaion annotation class system: 17 base classes in
// 3 weather modes (Norm +0, Wint +20, Night +40) laid out in 80 class slots,
// the layout every Azaion YOLO model is trained with. It is shared by the
// daemon, the plugins and tools, and has no dependencies.
package classes

import (
	"fmt"
	"strings"
)

// Slots is the number of class slots of an Azaion model (nc in data.yaml).
const Slots = 80

// WeatherStride is the distance between the slots of two weather modes.
const WeatherStride = 20

// Weather is a weather mode; its value is the offset added to a base class id.
type Weather int

// The weather modes.
const (
	Norm  Weather = 0
	Wint  Weather = 20
	Night Weather = 40
)

// Weathers lists the weather modes in slot order.
var Weathers = []Weather{Norm, Wint, Night}

// String returns the mode's name: Norm, Wint or Night.
func (w Weather) String() string {
	switch w {
	case Norm:
		return "Norm"
	case Wint:
		return "Wint"
	case Night:
		return "Night"
	}
	return fmt.Sprintf("Weather(%d)", int(w))
}

// ParseWeather parses a weather mode name (case-insensitive).
func ParseWeather(s string) (Weather, error) {
	for _, w := range Weathers {
		if strings.EqualFold(s, w.String()) {
			return w, nil
		}
	}
	return 0, fmt.Errorf("unknown weather mode %q (want Norm, Wint or Night)", s)
}

// Base is the list of base class names, indexed by base class id.
var Base = []string{
	"ArmorVehicle", "Truck", "Vehicle", "Artillery", "Shadow", "Trenches",
	"MilitaryMan", "TyreTracks", "AdditArmoredTank", "Smoke", "Plane", "Moto",
	"CamouflageNet", "CamouflageBranches", "Roof", "Building", "Caponier",
}

// NumBase is the number of base classes (17).
var NumBase = len(Base)

// ID returns the class slot of a base class in a weather mode.
func ID(base int, w Weather) int { return base + int(w) }

// Split splits a class slot into its base class and weather mode. ok is false
// when id is not a used slot (outside 0..79 or in a reserved gap).
func Split(id int) (base int, w Weather, ok bool) {
	if id < 0 || id >= 3*WeatherStride {
		return 0, 0, false
	}
	w = Weather(id / WeatherStride * WeatherStride)
	base = id % WeatherStride
	if base >= len(Base) {
		return 0, 0, false
	}
	return base, w, true
}

// Used reports whether id is one of the 51 used class slots.
func Used(id int) bool {
	_, _, ok := Split(id)
	return ok
}

// Name returns the name of a class slot as written in data.yaml: the base
// name for Norm ("Truck"), the base name and mode for the others
// ("Truck(Wint)", "Truck(Night)"), and "Reserved-NN" for unused slots.
func Name(id int) string {
	base, w, ok := Split(id)
	if !ok {
		return fmt.Sprintf("Reserved-%02d", id)
	}
	if w == Norm {
		return Base[base]
	}
	return Base[base] + "(" + w.String() + ")"
}

// Names returns the names of all 80 slots in order.
func Names() []string {
	out := make([]string, Slots)
	for i := range out {
		out[i] = Name(i)
	}
	return out
}

// Lookup returns the slot of a name produced by Name (case-insensitive),
// also accepting a bare base name for Norm.
func Lookup(name string) (int, bool) {
	for i := 0; i < Slots; i++ {
		if strings.EqualFold(Name(i), name) {
			return i, true
		}
	}
	return 0, false
}

// BaseName returns the base class name of a used slot, or "" for unused ones.
func BaseName(id int) string {
	base, _, ok := Split(id)
	if !ok {
		return ""
	}
	return Base[base]
}
