"""Virtual patients: replay WFDB records and synthetic ECG into Kafka."""
