"""tutorwatch: early warning of prepaid-fee risk in off-campus training institutions."""
