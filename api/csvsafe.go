package api

import "strconv"

// csvSafe neutralises a cell a spreadsheet would run as a formula (one
// starting with =, +, -, @, a tab or a carriage return; a DeviceName such
// as =HYPERLINK(...) comes from the Mac): it is prefixed with a single
// quote, which spreadsheets show as text. Plain numbers (-3, +1.5) are
// left alone: they are no formula and tools read them as numbers.
func csvSafe(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if _, err := strconv.ParseFloat(cell, 64); err == nil {
			return cell
		}
		return "'" + cell
	}
	return cell
}

func csvSafeRow(row []string) []string {
	for i, c := range row {
		row[i] = csvSafe(c)
	}
	return row
}
