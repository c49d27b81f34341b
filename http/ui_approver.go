package http

// approverUXRoutes are the approver's routes added beside the base table
// (address book, passkeys).
func approverUXRoutes() []Route { return nil }
