package http

// topupRoutes are the credit top-up routes.
func topupRoutes() []Route { return nil }
